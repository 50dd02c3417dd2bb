"""The motion probe: how much optical flow a frozen network's features carry (D3D, Sec. 3)."""
