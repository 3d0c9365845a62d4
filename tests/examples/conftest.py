"""The example stacks are judged by the same running policy packs as the pack's own tests."""

from tests.policies.conftest import pack, pack_process, preview_pack, preview_pack_process

__all__ = ["pack", "pack_process", "preview_pack", "preview_pack_process"]
