"""The operations dashboard: every widget graphs the metrics an operator watches, each in
the region where CloudWatch has it."""

from __future__ import annotations

import json

import pytest

from stacks.config import parse_config
from stacks.regions import EDGE_REGIONS_BY_PRICE_CLASS
from tests.cdk.conftest import example_data, synthesize
from tests.cdk.test_config import config_error

PRIMARY = "eu-west-1"


def rendered(node) -> str:
    """The dashboard body with its CloudFormation tokens spelled out."""
    if isinstance(node, str):
        return node
    ((kind, arg),) = node.items()
    if kind == "Fn::Join":
        return arg[0].join(rendered(part) for part in arg[1])
    if kind == "Ref":
        return {"AWS::Region": PRIMARY}[arg]
    if kind == "Fn::ImportValue":
        return f"<import:{arg}>"
    raise AssertionError(f"unexpected token {node!r}")


def widgets(synthesized) -> dict[str, dict]:
    template = synthesized.templates["Dashboard"]
    (dashboard,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    body = json.loads(rendered(dashboard["Properties"]["DashboardBody"]))
    return {w["properties"]["title"]: w["properties"] for w in body["widgets"]}


def metrics(widget: dict) -> list[tuple[str, str, dict, dict]]:
    """(namespace, name, dimensions, options) of each line; "..." repeats are expanded."""
    lines = []
    for line in widget["metrics"]:
        options = line[-1] if isinstance(line[-1], dict) else {}
        fields = line[:-1] if options else line
        namespace, name, *dims = fields
        lines.append((namespace, name, dict(zip(dims[::2], dims[1::2], strict=True)), options))
    return lines


@pytest.fixture(scope="module")
def board(example) -> dict[str, dict]:
    return widgets(example)


def test_bucket_size_and_objects(board):
    size = metrics(board["Media bucket size (bytes, by storage class)"])
    bucket = "stowage-example-media-123456789012-eu-west-1"
    assert {m[2]["StorageType"] for m in size} >= {
        "StandardStorage",
        "IntelligentTieringFAStorage",
        "IntelligentTieringIAStorage",
    }
    assert all(
        m[:2] == ("AWS/S3", "BucketSizeBytes") and m[2]["BucketName"] == bucket for m in size
    )
    assert all(m[3]["period"] == 86400 for m in size)
    (objects,) = metrics(board["Media bucket objects"])
    assert objects[1] == "NumberOfObjects"
    assert objects[2] == {"BucketName": bucket, "StorageType": "AllStorageTypes"}


@pytest.mark.parametrize(
    ("title", "names", "stat"),
    [
        ("CloudFront requests", ["Requests"], "Sum"),
        ("CloudFront cache hit rate (%)", ["CacheHitRate"], "Average"),
        ("CloudFront error rates (%)", ["4xxErrorRate", "5xxErrorRate"], "Average"),
    ],
)
def test_cloudfront_metrics_are_read_in_us_east_1(board, title, names, stat):
    lines = metrics(board[title])
    assert [m[1] for m in lines] == names
    for namespace, _, dims, options in lines:
        assert namespace == "AWS/CloudFront"
        assert dims == {
            "DistributionId": "<import:stowage-example-distribution-id>",
            "Region": "Global",
        }
        assert options["region"] == "us-east-1"
        assert options.get("stat", "Average") == stat


@pytest.mark.parametrize(
    ("title", "name", "stats"),
    [
        ("Resizer invocations", "Invocations", ["Sum"]),
        ("Resizer errors", "Errors", ["Sum"]),
        ("Resizer duration p50 / p99 (ms)", "Duration", ["p50", "p99"]),
        ("Resizer throttles", "Throttles", ["Sum"]),
    ],
)
def test_resizer_metrics_cover_every_serving_region(board, title, name, stats):
    lines = metrics(board[title])
    regions = EDGE_REGIONS_BY_PRICE_CLASS["PriceClass_100"]
    assert sorted((m[3]["region"], m[3].get("stat", "Average")) for m in lines) == sorted(
        (region, stat) for region in regions for stat in stats
    )
    for namespace, metric_name, dims, _ in lines:
        assert (namespace, metric_name) == ("AWS/Lambda", name)
        assert dims == {"FunctionName": "<import:stowage-example-resizer-metric-name>"}


def test_the_resizer_metric_name_is_the_edge_replica_name(example):
    """Lambda@Edge replicas report as "us-east-1.<function name>"."""
    output = example.templates["Cdn"]["Outputs"]["ResizerMetricName"]
    join = output["Value"]["Fn::Join"]
    assert join[0] == "."
    assert join[1][0] == "us-east-1"
    assert join[1][1]["Fn::Select"][0] == 6


def test_catalog_throttles_and_replication(board):
    throttles = metrics(board["Catalog table throttled events"])
    assert [m[1] for m in throttles] == ["ReadThrottleEvents", "WriteThrottleEvents"]
    assert all(
        m[2] == {"TableName": "<import:stowage-example-catalog-table-name>"} for m in throttles
    )
    for title, name in (
        ("Replication latency (s)", "ReplicationLatency"),
        ("Replication pending bytes", "BytesPendingReplication"),
    ):
        lines = metrics(board[title])
        assert {m[2]["RuleId"] for m in lines} == {
            "Replicate-videos",
            "Replicate-images",
            "Replicate-transcripts",
            "Replicate-processed",
        }
        assert all(m[1] == name and m[3]["stat"] == "Maximum" for m in lines)
        assert all(
            m[2]["DestinationBucket"] == "stowage-example-replica-123456789012-eu-central-1"
            for m in lines
        )


def test_the_cache_hit_rate_needs_additional_metrics(example):
    """CacheHitRate exists only with the distribution's monitoring subscription."""
    example.template("Cdn").has_resource_properties(
        "AWS::CloudFront::MonitoringSubscription",
        {
            "MonitoringSubscription": {
                "RealtimeMetricsSubscriptionConfig": {
                    "RealtimeMetricsSubscriptionStatus": "Enabled"
                }
            }
        },
    )


def test_without_a_replica_there_are_no_replication_widgets(single_region):
    board = widgets(single_region)
    assert "Replication latency (s)" not in board
    assert "Catalog table throttled events" in board
    assert "CloudFront requests" in board


def test_host_only_has_no_dashboard(host_only):
    assert "Dashboard" not in host_only.templates


def cache_hit_rate_alarm(synthesized) -> dict:
    (alarm,) = [
        r["Properties"]
        for r in synthesized.templates["CdnAlarms"]["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    return alarm


def test_cache_hit_rate_alarm_watches_cloudfront_in_us_east_1(example):
    alarm = cache_hit_rate_alarm(example)
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "AWS/CloudFront",
        "CacheHitRate",
        "Average",
    )
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert alarm["Threshold"] == 80
    assert alarm["Period"] * alarm["EvaluationPeriods"] == 3600  # "stays under" for an hour
    assert alarm["TreatMissingData"] == "notBreaching"
    dims = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert dims["Region"] == "Global"
    assert dims["DistributionId"]["Fn::GetStackOutput"]["StackName"] == "stowage-example-cdn"
    assert dims["DistributionId"]["Fn::GetStackOutput"]["Region"] == "eu-west-1"
    manifest = json.loads((example.outdir / "manifest.json").read_text())
    assert manifest["artifacts"]["CdnAlarms"]["environment"].endswith("/us-east-1")


def test_alarm_notifies_the_operator_from_us_east_1(example):
    """Alarms notify only topics of their own region: a topic there, same email."""
    alarm = cache_hit_rate_alarm(example)
    template = example.template("CdnAlarms")
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )
    (topic_id,) = template.find_resources("AWS::SNS::Topic")
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]
    assert alarm["OKActions"] == [{"Ref": topic_id}]


def test_in_us_east_1_the_alarm_uses_the_existing_topic(tmp_path):
    data = example_data()
    data.update(primary_region="us-east-1", replica={"region": "us-west-2"})
    data["lightsail"]["availability_zone"] = "us-east-1a"
    data["cdn"]["cache_hit_rate_target_percent"] = 92.5
    synthesized = synthesize(parse_config(data, "us-east-1 example"), tmp_path)
    alarm = cache_hit_rate_alarm(synthesized)
    assert alarm["Threshold"] == 92.5
    synthesized.template("CdnAlarms").resource_count_is("AWS::SNS::Topic", 0)
    (action,) = alarm["AlarmActions"]
    assert "AlarmTopic" in json.dumps(action)  # Storage's Monitoring/AlarmTopic


@pytest.mark.parametrize("value", [0, 101, "high"])
def test_cache_hit_rate_target_is_validated(tmp_path, value):
    data = example_data()
    data["cdn"]["cache_hit_rate_target_percent"] = value
    message = config_error(tmp_path, data)
    assert "  cdn.cache_hit_rate_target_percent: " in message
