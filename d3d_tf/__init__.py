"""d3d_tf: D3D (Distilled 3D Networks) for video action recognition on TF 2 / Keras 3.

D3D (Stroud et al., WACV 2020, https://arxiv.org/abs/1812.08249) trains an RGB S3D-G network to
also predict the logits of a frozen optical-flow teacher, so one RGB model approaches two-stream
accuracy without computing optical flow at test time.
"""

__version__ = "0.1.0"
