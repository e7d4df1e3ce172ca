/* torch-checkpoint.h — the tensors of a PyTorch checkpoint, read without
 * Python and without running any of the pickle's code.
 *
 * Reads what torch.save writes since torch 1.6 (a ZIP archive: NAME/data.pkl
 * plus one NAME/data/KEY entry per storage) and what torch.jit.save writes
 * (TorchScript: the same layout plus code/ and constants.pkl; OpenAI's CLIP
 * .pt files).  The pickle is read by the restricted unpickler (pickle.h)
 * with an allow-list of the globals state dicts use; a file that pickles
 * other Python objects (a whole nn.Module, argparse.Namespace, numpy
 * scalars) is refused with a message naming the global.
 *
 * Which tensors are exposed:
 * - torch.save: the state dict is the top-level dict if any of its values is
 *   a tensor (model.state_dict(), AgriCLIP's aligner {'W', 'b'}); otherwise
 *   the first of 'state_dict', 'model_state_dict', 'model', 'module',
 *   'state_dict_ema', 'model_ema' that is a dict, looked for again inside it
 *   (up to 4 levels: {"model": {"state_dict": …}}).  Only its string-keyed
 *   tensor values are exposed; other values (numbers, None, nested dicts)
 *   are skipped.  When every name starts with "module." (DataParallel) or
 *   "_orig_mod." (torch.compile), the prefix is removed.
 * - TorchScript: the module tree's tensor attributes, named by their
 *   attribute path ("visual.conv1.weight"), which are the state dict names.
 *   Besides parameters and buffers this includes plain tensor attributes.
 *
 * Tensors: dtype from the storage type (F32, F16, BF16, F64, I64, I32, I16,
 * I8, U8, BOOL; others are AGC_ERROR_UNSUPPORTED).  Views that are
 * contiguous (torch's rule: strides of size-1 dims do not matter) point into
 * the mapped file at their storage offset, so tensors sharing a storage
 * share bytes.  Strided views (a saved W.t(), an expand()) are copied into
 * contiguous memory the checkpoint owns, as long as all such copies together
 * stay within the file size.  The device a storage was saved from ('cuda:0')
 * does not matter.  Storages must be little-endian (the archive's byteorder
 * record) and lie inside their entries.  Every entry read is CRC-checked
 * when the archive records a CRC, which reads the whole file once at open
 * (about 0.4 s of one core for 600 MB).
 *
 * Errors: AGC_ERROR_IO, AGC_ERROR_FORMAT (malformed: names the file, the
 * entry or the tensor), AGC_ERROR_UNSUPPORTED (valid but not readable here:
 * legacy pre-1.6 files are told apart by agc_weights_open). */
#pragma once

#include "formats/tensor.h"

#include <gio/gio.h>

typedef struct AgcTorchCheckpoint AgcTorchCheckpoint;

AgcTorchCheckpoint *agc_torch_checkpoint_open (const char *path, GError **error);
/* Same, over bytes already in memory (kept alive by the checkpoint). */
AgcTorchCheckpoint *agc_torch_checkpoint_new_from_bytes (GBytes *bytes, const char *display_name,
                                                         GError **error);
void agc_torch_checkpoint_free (AgcTorchCheckpoint *checkpoint);

const char *agc_torch_checkpoint_path (const AgcTorchCheckpoint *checkpoint);
int agc_torch_checkpoint_n_tensors (const AgcTorchCheckpoint *checkpoint);
/* In the order of the state dict (TorchScript: of the module tree). */
const AgcTensorView *agc_torch_checkpoint_tensor (const AgcTorchCheckpoint *checkpoint, int index);
/* NULL when absent. */
const AgcTensorView *agc_torch_checkpoint_find (const AgcTorchCheckpoint *checkpoint,
                                                const char *name);
