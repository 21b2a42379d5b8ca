"""ReplicaStack and the cross-region replication wiring from StorageStack."""

import json

from aws_cdk.assertions import Match

from tests.cdk.test_storage_stack import as_list, media_bucket, only, statements

REPLICA_BUCKET = "stowage-example-replica-123456789012-eu-central-1"
REPLICA_ALIAS = "alias/stowage-example/media-replica"


def test_replica_key_and_bucket(replica):
    key_id, key = only(replica, "AWS::KMS::Key")
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    replica.has_resource_properties(
        "AWS::KMS::Alias",
        {"AliasName": REPLICA_ALIAS, "TargetKeyId": {"Fn::GetAtt": [key_id, "Arn"]}},
    )
    _, bucket = only(replica, "AWS::S3::Bucket", {"BucketName": REPLICA_BUCKET})
    props = bucket["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (sse,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse == {
        "BucketKeyEnabled": True,
        "ServerSideEncryptionByDefault": {
            "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]},
            "SSEAlgorithm": "aws:kms",
        },
    }
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert "LoggingConfiguration" in props
    assert bucket["DeletionPolicy"] == "Retain"


def test_replication_rules_cover_permanent_prefixes_with_the_replica_key(storage):
    _, bucket = media_bucket(storage)
    rules = bucket["Properties"]["ReplicationConfiguration"]["Rules"]
    assert [rule["Filter"]["Prefix"] for rule in rules] == [
        "videos/",
        "images/",
        "transcripts/",
        "processed/",
    ]
    assert len({rule["Priority"] for rule in rules}) == len(rules)
    for rule in rules:
        assert rule["Status"] == "Enabled"
        assert rule["SourceSelectionCriteria"] == {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
        assert rule["DeleteMarkerReplication"] == {"Status": "Enabled"}
        destination = rule["Destination"]
        assert destination["Bucket"] == f"arn:aws:s3:::{REPLICA_BUCKET}"
        assert destination["EncryptionConfiguration"] == {
            "ReplicaKmsKeyID": f"arn:aws:kms:eu-central-1:123456789012:{REPLICA_ALIAS}"
        }
        assert destination["Metrics"]["Status"] == "Enabled"
        assert destination["ReplicationTime"] == {"Status": "Enabled", "Time": {"Minutes": 15}}


def test_wiring_names_match_across_regions_without_exports(example):
    """The ARNs StorageStack points at are exactly the names ReplicaStack creates."""
    storage, replica = example.templates["Storage"], example.templates["Replica"]
    names = {r["Properties"].get("BucketName") for r in replica["Resources"].values()}
    aliases = {r["Properties"].get("AliasName") for r in replica["Resources"].values()}
    for rule in storage["Resources"][media_bucket(example.template("Storage"))[0]]["Properties"][
        "ReplicationConfiguration"
    ]["Rules"]:
        assert rule["Destination"]["Bucket"].removeprefix("arn:aws:s3:::") in names
        assert (
            rule["Destination"]["EncryptionConfiguration"]["ReplicaKmsKeyID"].split(":")[-1]
            in aliases
        )
    text = json.dumps(storage)
    assert "Fn::ImportValue" not in text
    assert "Custom::CrossRegionExportReader" not in text
    manifest = json.loads((example.outdir / "manifest.json").read_text())
    assert "Replica" in manifest["artifacts"]["Storage"]["dependencies"]
    assert manifest["artifacts"]["Replica"]["environment"] == "aws://123456789012/eu-central-1"
    assert manifest["artifacts"]["Storage"]["environment"] == "aws://123456789012/eu-west-1"


def test_replication_role_is_least_privilege(storage):
    _, bucket = media_bucket(storage)
    role_ref = bucket["Properties"]["ReplicationConfiguration"]["Role"]
    role_id = role_ref["Fn::GetAtt"][0]
    _, role = only(
        storage, "AWS::IAM::Role", {"Description": Match.string_like_regexp("replication")}
    )
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "s3.amazonaws.com"
    }
    granted = statements(storage, role_id)
    by_action = {action: s for s in granted for action in as_list(s["Action"])}
    assert set(by_action) == {
        "s3:GetReplicationConfiguration",
        "s3:ListBucket",
        "s3:GetObjectVersionForReplication",
        "s3:GetObjectVersionAcl",
        "s3:GetObjectVersionTagging",
        "s3:ReplicateObject",
        "s3:ReplicateDelete",
        "s3:ReplicateTags",
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
    }
    assert by_action["s3:ReplicateObject"]["Resource"] == f"arn:aws:s3:::{REPLICA_BUCKET}/*"
    assert by_action["kms:Decrypt"]["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}
    }
    assert by_action["kms:Encrypt"]["Resource"] == "arn:aws:kms:eu-central-1:123456789012:key/*"
    assert by_action["kms:Encrypt"]["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.eu-central-1.amazonaws.com"},
        "ForAnyValue:StringEquals": {"kms:ResourceAliases": REPLICA_ALIAS},
    }
    assert all(s["Resource"] != "*" for s in granted)


def test_replication_alarms_watch_latency_and_failures(storage):
    topic_id, _ = only(storage, "AWS::SNS::Topic")
    alarms = storage.find_resources("AWS::CloudWatch::Alarm")
    by_metric = {}
    for alarm in alarms.values():
        for query in alarm["Properties"].get("Metrics", []):
            if "MetricStat" in query:
                by_metric.setdefault(query["MetricStat"]["Metric"]["MetricName"], []).append(alarm)
    assert len(by_metric["ReplicationLatency"]) == 4  # one metric per rule, one alarm
    assert len(by_metric["OperationsFailedReplication"]) == 4
    latency = by_metric["ReplicationLatency"][0]["Properties"]
    assert latency["Threshold"] == 900
    failed = by_metric["OperationsFailedReplication"][0]["Properties"]
    assert failed["Threshold"] == 0
    assert failed["ComparisonOperator"] == "GreaterThanThreshold"
    for props in (latency, failed):
        assert props["AlarmActions"] == [{"Ref": topic_id}]
        (expression,) = [q for q in props["Metrics"] if "Expression" in q]
        assert expression["ReturnData"] is True


def test_single_region_has_no_replication(single_region):
    assert "Replica" not in single_region.templates
    storage = single_region.template("Storage")
    _, bucket = media_bucket(storage)
    assert "ReplicationConfiguration" not in bucket["Properties"]
    alarms = storage.find_resources("AWS::CloudWatch::Alarm")
    assert len(alarms) == 1  # the 5xx alarm only
    assert not storage.find_resources(
        "AWS::IAM::Role", {"Properties": {"Description": Match.string_like_regexp("replication")}}
    )


def test_replication_time_control_is_optional(tmp_path):
    from stacks.config import parse_config
    from tests.cdk.conftest import example_data, synthesize

    data = example_data()
    data["replica"]["replication_time_control"] = False
    synthesized = synthesize(parse_config(data, "no-rtc"), tmp_path)
    _, bucket = media_bucket(synthesized.template("Storage"))
    for rule in bucket["Properties"]["ReplicationConfiguration"]["Rules"]:
        assert "ReplicationTime" not in rule["Destination"]
        assert rule["Destination"]["Metrics"]["Status"] == "Enabled"
