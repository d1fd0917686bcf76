"""Files in, tensors out: the dataset layouts (VITON, VITON-HD, DressCode), the readers of what
outside tools produce (parsing schemes, keypoint formats, DensePose files), batches -> model
inputs, garment masks from product photos, and a synthetic dataset generator. Imports nothing
of the project but ``common``."""
