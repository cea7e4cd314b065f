"""The ROS layer: the only package that imports rclpy and message types."""
