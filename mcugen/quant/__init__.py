"""Quantization: the integer arithmetic spec (arith) and what derives int8 parameters from floats."""
