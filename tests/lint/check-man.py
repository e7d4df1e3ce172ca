"""check-man.py AGRICLIP MAN_DIR — the manual says what --help says: every
command of `agriclip --help` has a page agriclip-COMMAND.1 listed under
agriclip.1's COMMANDS (and no page names a command that does not exist), and
every option of `agriclip COMMAND --help` is described in OPTIONS of its page,
which describes no other option."""
import os
import re
import subprocess
import sys

agriclip, man_dir = sys.argv[1], sys.argv[2]
env = dict(os.environ, LC_ALL="C", LANGUAGE="")
problems = []


def help_text(*args):
    return subprocess.run([agriclip, *args, "--help"], capture_output=True, text=True,
                          env=env, check=True).stdout


def page(name):
    with open(os.path.join(man_dir, name + ".1"), encoding="utf-8") as f:
        return re.sub(r"\\f[BIRP]", "", f.read()).replace("\\-", "-")


def section(text, title):
    m = re.search(r"^\.SH " + title + r"\n(.*?)(?=^\.SH |\Z)", text, re.M | re.S)
    return m.group(1) if m else ""


def described_options(text):
    """Options named at the head of an OPTIONS item (the line after .TP)."""
    heads = re.findall(r"^\.TP\n(.*)$", section(text, "OPTIONS"), re.M)
    return {o for head in heads for o in re.findall(r"(?<![\w-])(--?[a-z0-9][a-z0-9-]*)", head)}


commands = re.search(r"^Commands:\n(.*?)\n\n", help_text(), re.M | re.S).group(1)
commands = {line.split()[0] for line in commands.splitlines()}
main = page("agriclip")
listed = set(re.findall(r"^\.BR agriclip-([a-z0-9-]+) \(1\)$", section(main, "COMMANDS"), re.M))
pages = {f[len("agriclip-"):-2] for f in os.listdir(man_dir)
         if f.startswith("agriclip-") and f.endswith(".1")}
for name in sorted(commands - listed):
    problems.append(f"agriclip.1: COMMANDS does not list {name}")
for name in sorted(listed - commands):
    problems.append(f"agriclip.1: COMMANDS lists {name}, which agriclip --help does not know")
for name in sorted(commands - pages):
    problems.append(f"no page agriclip-{name}.1")
for name in sorted(pages - commands):
    problems.append(f"agriclip-{name}.1 describes a command agriclip --help does not know")
for option in ("--threads", "--help", "--version"):
    if option not in described_options(main):
        problems.append(f"agriclip.1: OPTIONS does not describe {option}")

for name in sorted(commands & pages):
    text = help_text(name)
    options = set(re.findall(r"^\s+(?:(-\w), )?(--[\w-]+)", text, re.M))
    said = {o for pair in options for o in pair if o} | {"--threads"}
    described = described_options(page("agriclip-" + name))
    for option in sorted(said - described):
        problems.append(f"agriclip-{name}.1: OPTIONS does not describe {option}")
    for option in sorted(described - said):
        problems.append(f"agriclip-{name}.1: describes {option}, which "
                        f"'agriclip {name} --help' does not know")

for p in problems:
    print(p)
print(f"{len(commands)} commands checked, {len(problems)} problems")
sys.exit(1 if problems else 0)
