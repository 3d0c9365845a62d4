"""The tag conversion the aws-native resources share: one key/value object per tag, in key order."""

from __future__ import annotations

import pulumi_aws_native as aws_native

from components.tags import native_tags


def test_each_tag_becomes_one_key_value_object_in_key_order() -> None:
    converted = native_tags({"Owner": "iot", "CostCenter": "cc-1", "Environment": "dev"}, aws_native.TagArgs)
    assert all(isinstance(tag, aws_native.TagArgs) for tag in converted)
    assert [(tag.key, tag.value) for tag in converted] == [
        ("CostCenter", "cc-1"), ("Environment", "dev"), ("Owner", "iot"),
    ]


def test_create_only_tags_take_their_own_type() -> None:
    converted = native_tags({"Project": "fleetguard"}, aws_native.CreateOnlyTagArgs)
    assert [type(tag) for tag in converted] == [aws_native.CreateOnlyTagArgs]
    assert (converted[0].key, converted[0].value) == ("Project", "fleetguard")


def test_no_tags_is_an_empty_list() -> None:
    assert native_tags({}, aws_native.TagArgs) == []
