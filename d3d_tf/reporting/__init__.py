"""The D3D results table of a synthetic run and the reproduction report built from several."""
