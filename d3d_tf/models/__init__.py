"""S3D-G models (layers, the endpoint backbone, the classifier) and the VideoSwin student.

`VideoSwinClassifier` is registered here so that every loader can read it; keras-cv itself is
imported only when one is built or loaded.
"""

from d3d_tf.models.clip_geometry import ClipGeometry, geometry_of
from d3d_tf.models.flow_settings import FlowSettings
from d3d_tf.models.s3dg_backbone import ENDPOINTS, S3DGBackbone
from d3d_tf.models.s3dg_classifier import LogitsPool3D, S3DGClassifier
from d3d_tf.models.s3dg_layers import InceptionBlock3D, SelfGating, STConv3D
from d3d_tf.models.videoswin_classifier import VideoSwinClassifier

__all__ = [
    "ClipGeometry", "ENDPOINTS", "FlowSettings", "geometry_of", "InceptionBlock3D", "LogitsPool3D", "S3DGBackbone", "S3DGClassifier",
    "SelfGating", "STConv3D", "VideoSwinClassifier",
]
