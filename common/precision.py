"""The number formats a network runs in, by the one name every command line uses
(``--precision``): fp32 is float32 throughout; bf16 and fp16 autocast the convolutions and
matrix products (fp16 trains with a gradient scaler)."""

import torch

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
