"""``ros2 launch hand_recon_ros demo.launch.py``: the demo on a ROS 2 install.

Starts ``image_source_node`` (two moving synthetic hands by default, on ``/camera/image`` and
``/camera/camera_info``), ``hand_recon_node`` (outputs under ``/hand_recon_node/``, parameters from
``config/hand_recon.yaml``) and RViz with ``config/demo.rviz`` (markers, TF, overlay; fixed frame: the camera's
optical frame).

Arguments: ``source`` (synthetic | a video file | an image folder | camera:<index> | /dev/videoN), ``rate`` (Hz),
``checkpoint`` (model checkpoint; empty: the packaged default model, random weights until one is packaged),
``device`` (cpu | cuda | auto), ``rviz`` (true | false).

Without ``launch`` (the PyPI environment), ``hand-recon ros-demo`` runs the same two nodes in one process.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("hand_recon_ros")
    args = [
        DeclareLaunchArgument("source", default_value="synthetic",
                              description="synthetic, a video file, an image folder, camera:<index> or /dev/videoN"),
        DeclareLaunchArgument("rate", default_value="15.0", description="frames per second of the source"),
        DeclareLaunchArgument("checkpoint", default_value="", description="model checkpoint (empty: default model)"),
        DeclareLaunchArgument("device", default_value="cpu", description="cpu, cuda, cuda:N or auto"),
        DeclareLaunchArgument("rviz", default_value="true", description="start RViz"),
    ]
    source = Node(
        package="hand_recon_ros", executable="image_source_node", name="image_source", namespace="camera",
        output="screen",
        parameters=[{"source": ParameterValue(LaunchConfiguration("source"), value_type=str),
                     "rate": ParameterValue(LaunchConfiguration("rate"), value_type=float)}],
    )
    recon = Node(
        package="hand_recon_ros", executable="hand_recon_node", name="hand_recon_node", output="screen",
        parameters=[PathJoinSubstitution([share, "config", "hand_recon.yaml"]),
                    {"model.checkpoint": ParameterValue(LaunchConfiguration("checkpoint"), value_type=str),
                     "model.device": ParameterValue(LaunchConfiguration("device"), value_type=str)}],
        remappings=[("image", "/camera/image"), ("camera_info", "/camera/camera_info")],
    )
    rviz = Node(
        package="rviz2", executable="rviz2", name="rviz2", output="log",
        arguments=["-d", PathJoinSubstitution([share, "config", "demo.rviz"])],
        condition=IfCondition(LaunchConfiguration("rviz")),
    )
    return LaunchDescription([*args, source, recon, rviz])
