"""``ros2 launch hand_recon_ros demo.launch.py``: the demo on a ROS 2 install.

Until the reconstruction node lands this runs the ROS 2 smoke pair: ``hand_mesh_smoke`` publishes HandMeshArray
messages and checks their reception, ``hand_mesh_echo`` prints what arrives on ``hand_recon_smoke/hands``.
"""

from launch_ros.actions import Node

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        Node(package="hand_recon_ros", executable="hand_mesh_echo", name="hand_mesh_echo", output="screen",
             remappings=[("hands", "hand_recon_smoke/hands")]),
        Node(package="hand_recon_ros", executable="hand_mesh_smoke", name="hand_mesh_smoke", output="screen",
             arguments=["--count", "20"]),
    ])
