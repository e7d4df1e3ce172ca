#!/usr/bin/python3
"""The table of second-camera.sh: k-NN and zero-shot accuracy on camera 2
(held out) and camera 1 (control), before and after DINO, per seed and
their mean +- half the range; the DINO runs' CPU and wall time (camera 2;
and camera 1's domain pretraining, on the "before" row, when it ran).

  second-camera-table.py WORK_DIR SEED...
"""
import json
import os
import sys


def row(values):
    return "| " + " | ".join(values) + " |"


def main():
    work, seeds = sys.argv[1], sys.argv[2:]
    columns = [("cam2-test", "knn"), ("cam2-test", "adapted"),
               ("cam1-test", "knn"), ("cam1-test", "adapted")]
    names = ["camera 2 k-NN", "camera 2 zero-shot", "camera 1 k-NN", "camera 1 zero-shot",
             "camera 2 k-NN, bank camera 2"]
    print(row(["seed", "stage"] + names + ["DINO time"]))
    print(row(["---"] * (len(names) + 3)))
    stages = [("before", "before"), ("bn", "BatchNorm only"), ("after", "after")]
    results = {stage: [] for stage, _ in stages}
    for seed in seeds:
        run = os.path.join(work, "seed-" + seed)
        for stage, label in stages:
            with open(os.path.join(run, stage + ".json")) as f:
                table = json.load(f)
            by_data = {os.path.basename(d["data"].rstrip("/")): d for d in table["datasets"]}
            # with the adapter: the fitted aligner's zero-shot, the ResNet it carries
            values = [by_data[data][key + "_adapted" if key == "knn" else key]
                      for data, key in columns]
            # DINO's own k-NN protocol: bank = the photos it trained on, tagged
            with open(os.path.join(run, stage + "-bank2.json")) as f:
                values.append(json.load(f)["datasets"][0]["knn_adapted"])
            results[stage].append(values)
            time = ""  # before: the domain pretraining's, if any; after: DINO on camera 2
            timed = {"before": "domain", "after": "dino"}.get(stage)
            path = os.path.join(run, f"{timed}.time")
            if timed and os.path.exists(path):
                with open(path) as f:
                    time = f.read().strip()
            print(row([seed, label] + ["%.1f %%" % (100 * v) for v in values] + [time]))
    for stage, label in stages:
        cells = []
        for c in range(len(names)):
            v = [r[c] for r in results[stage]]
            cells.append("%.1f ± %.1f %%" % (50 * (max(v) + min(v)), 50 * (max(v) - min(v))))
        print(row(["mean", label] + cells + [""]))


if __name__ == "__main__":
    main()
