"""Model conversion at install time, without TensorFlow.

The only permissively licensed general detector our registries carry (NanoDet-g) ships as a
TF.js graph model inside an npm package. tf2onnx could convert it, but it needs TensorFlow
(a 1.7 GB venv) on every machine that installs the service. A TF.js graph model is only JSON
(a TF GraphDef) plus raw weight bytes, and NanoDet-g uses 17 op types, so a small converter
that knows exactly those ops is cheaper and easier to audit than that venv:

- `tfjs`: reads `model.json` + weight shards into plain nodes and numpy constants.
- `builder`: assembles ONNX nodes and initializers; folds what is constant at conversion.
- `ops`: one function per supported TF op type; anything else is refused by name.
- `graph`: the driver, a TF.js model in, an ONNX `ModelProto` out.
- `nanodet`: NanoDet-g's pre-processing and box decoding appended as ONNX nodes, so the file
  speaks the "ssd" layout `OnnxDetector` already decodes.
"""


class ConversionError(Exception):
    """A TF.js model this converter cannot translate; the message says what and where."""
