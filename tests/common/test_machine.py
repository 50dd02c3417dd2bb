"""Generated reports name the machine they ran on, read from the machine, never typed in."""

import builtins
import io

from d3d_tf.common import machine
from d3d_tf.reporting import markdown


def test_cpu_model_is_read_from_proc_cpuinfo(monkeypatch):
  text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: Test CPU 9000 @ 3GHz\n"
  real_open = builtins.open
  monkeypatch.setattr(builtins, "open", lambda path, *a, **k: io.StringIO(text)
                      if path == "/proc/cpuinfo" else real_open(path, *a, **k))
  assert machine.cpu_model() == "Test CPU 9000 @ 3GHz"


def test_describe_names_cpu_count_and_gpus(monkeypatch):
  monkeypatch.setattr(machine, "cpu_model", lambda: "Test CPU")
  monkeypatch.setattr(machine, "cpu_count", lambda: 2)
  monkeypatch.setattr(machine, "gpus", lambda: [])
  assert machine.describe() == "Test CPU, 2 CPUs, no GPU"
  monkeypatch.setattr(machine, "gpus", lambda: ["NVIDIA H100", "NVIDIA H100"])
  assert machine.describe() == "Test CPU, 2 CPUs, 2 GPUs (NVIDIA H100)"


def test_report_header_states_the_machine_it_ran_on(monkeypatch):
  monkeypatch.setattr(machine, "describe", lambda: "Test CPU, 4 CPUs, no GPU")
  text = markdown.build(None, None, None, None, {}, {}, command="python -m d3d_tf.report")
  assert "(Test CPU, 4 CPUs, no GPU)" in text
  assert "2 CPU cores" not in text
  text = markdown.build(None, None, None, None, {}, {}, command="x", machine="Other CPU, 8 CPUs")
  assert "(Other CPU, 8 CPUs)" in text
