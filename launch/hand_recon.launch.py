"""``ros2 launch hand_recon_ros hand_recon.launch.py``: one ``hand_recon_node`` on a real camera.

Arguments:
    ``image`` / ``camera_info``: the camera's topics (default the RealSense layout
    ``/camera/camera/color/image_raw`` and ``.../camera_info``);
    ``namespace``: the node's namespace (outputs on ``/<namespace>/hand_recon_node/...``);
    ``params_file``: a parameter file (default the installed ``config/hand_recon.yaml``);
    ``frame_prefix``: TF frame prefix of this instance's hands (give each camera its own);
    ``autostart``: configure + activate at start (``false`` to hand the node to a lifecycle manager);
    ``node_name``: the node's name.

Several cameras: one instance per camera, each with its own namespace and frame prefix, e.g.::

    ros2 launch hand_recon_ros hand_recon.launch.py namespace:=left frame_prefix:=left_hand_ \\
        image:=/left/color/image_raw camera_info:=/left/color/camera_info
    ros2 launch hand_recon_ros hand_recon.launch.py namespace:=right frame_prefix:=right_hand_ \\
        image:=/right/color/image_raw camera_info:=/right/color/camera_info
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    default_params = PathJoinSubstitution([FindPackageShare("hand_recon_ros"), "config", "hand_recon.yaml"])
    args = [
        DeclareLaunchArgument("image", default_value="/camera/camera/color/image_raw",
                              description="sensor_msgs/Image topic of the camera"),
        DeclareLaunchArgument("camera_info", default_value="/camera/camera/color/camera_info",
                              description="sensor_msgs/CameraInfo topic of the camera"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of this instance"),
        DeclareLaunchArgument("node_name", default_value="hand_recon_node", description="node name"),
        DeclareLaunchArgument("params_file", default_value=default_params, description="parameter file"),
        DeclareLaunchArgument("frame_prefix", default_value="hand_", description="TF frame prefix of the hands"),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="configure and activate at start (false: lifecycle manager)"),
    ]
    node = Node(
        package="hand_recon_ros", executable="hand_recon_node", name=LaunchConfiguration("node_name"),
        namespace=LaunchConfiguration("namespace"), output="screen",
        parameters=[LaunchConfiguration("params_file"),
                    {"frame_prefix": ParameterValue(LaunchConfiguration("frame_prefix"), value_type=str),
                     "autostart": ParameterValue(LaunchConfiguration("autostart"), value_type=bool)}],
        remappings=[("image", LaunchConfiguration("image")), ("camera_info", LaunchConfiguration("camera_info"))],
    )
    return LaunchDescription([*args, node])
