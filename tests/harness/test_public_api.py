"""The package's public names resolve, and importing it (as pytest does for the plugin) stays light."""

import subprocess
import sys

import telemetry_asserts


def test_every_public_name_resolves():
    for name in telemetry_asserts.__all__:
        assert getattr(telemetry_asserts, name) is not None, name


def test_unknown_name_is_an_attribute_error():
    try:
        telemetry_asserts.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no attribute 'no_such_thing'" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_importing_the_package_loads_no_grpc_or_sdk():
    code = (
        "import sys, telemetry_asserts; "
        "heavy = [m for m in ('grpc', 'opentelemetry.sdk', 'numpy', 'yaml') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_no_export_is_shadowed_by_a_submodule():
    import importlib
    import pkgutil

    submodules = {m.name for m in pkgutil.iter_modules(telemetry_asserts.__path__)}
    assert not submodules & set(telemetry_asserts.__all__)
    importlib.import_module("telemetry_asserts.lint")
    assert callable(telemetry_asserts.lint.lint)
