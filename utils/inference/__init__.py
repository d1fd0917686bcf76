"""Running a trained try-on: the model loaded from checkpoints (``model``), an exported graph in
ONNX Runtime (``onnx_runtime``), the flags that name either (``loading``), and one pair of
photos of any size (``photos``)."""
