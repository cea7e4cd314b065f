"""ros2 launch gap_monitor monitor.launch.py [params_file:=...] [namespace:=...] [sim:=true]

Thin on purpose: the nodes, parameters and remappings come from gap_monitor.launching.monitor_nodes.
"""

from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from gap_monitor.launching import default_params_file, monitor_nodes


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def _nodes(context: LaunchContext) -> list[Node]:
    def arg(name: str) -> str:
        return str(LaunchConfiguration(name).perform(context))

    specs = monitor_nodes(
        params_file=arg("params_file"),
        namespace=arg("namespace"),
        use_sim_time=_truthy(arg("use_sim_time")),
        diagnostics_topic=arg("diagnostics_topic"),
        with_sim=_truthy(arg("sim")),
        scenario=arg("scenario"),
    )
    return [
        Node(
            package=s.package,
            executable=s.executable,
            name=s.name,
            namespace=s.namespace,
            parameters=list(s.parameters),
            remappings=list(s.remappings),
            arguments=list(s.arguments),
            output="screen",
        )
        for s in specs
    ]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params_file",
                default_value=default_params_file(),
                description="ROS 2 parameter file for the monitor",
            ),
            DeclareLaunchArgument("namespace", default_value="", description="namespace for the nodes"),
            DeclareLaunchArgument(
                "use_sim_time",
                default_value="false",
                description="use the /clock topic (a bag played with --clock, a simulator) as time",
            ),
            DeclareLaunchArgument(
                "diagnostics_topic",
                default_value="/diagnostics",
                description="where the monitor publishes its diagnostic_msgs/DiagnosticArray",
            ),
            DeclareLaunchArgument(
                "sim", default_value="false", description="also start the simulated sensor rig"
            ),
            DeclareLaunchArgument(
                "scenario", default_value="", description="sim scenario name or path (with sim:=true)"
            ),
            OpaqueFunction(function=_nodes),
        ]
    )
