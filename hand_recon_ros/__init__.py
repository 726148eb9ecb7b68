"""hand_recon_ros: ROS 2 nodes over hand_recon_core (no model logic here) and the generated messages.

The generated interfaces (``hand_recon_ros.msg``) live in the colcon install tree while the node modules may
be imported from a source checkout too (e.g. tests run from the repository root): extending ``__path__``
over every ``hand_recon_ros`` directory on ``sys.path`` lets both halves be found wherever Python starts.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
