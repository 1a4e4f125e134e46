"""mcugen: ONNX MobileNet -> int8 C99 for Arm Cortex-M, bit-exact with a NumPy simulator."""
__version__ = "0.1.0"
