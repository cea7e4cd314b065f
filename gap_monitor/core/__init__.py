"""Pure core: numpy/OpenCV/MCAP only. Nothing here imports rclpy or generated message modules."""
