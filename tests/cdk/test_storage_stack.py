"""StorageStack: every property that protects the media, checked on the synthesized template."""

import json

from aws_cdk.assertions import Match, Template

from stacks.constructs.catalog_table import BY_PREFIX_INDEX, TEMP_BY_EXPIRY_INDEX


def only(template: Template, resource_type: str, props: dict | None = None) -> tuple[str, dict]:
    found = template.find_resources(resource_type, {"Properties": props} if props else None)
    assert len(found) == 1, f"expected one {resource_type} matching, found {list(found)}"
    return next(iter(found.items()))


def media_bucket(template: Template) -> tuple[str, dict]:
    return only(
        template,
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": Match.any_value(),
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"},
                        "BucketKeyEnabled": True,
                    }
                ]
            },
        },
    )


def rules_by_id(bucket: dict) -> dict[str, dict]:
    return {rule["Id"]: rule for rule in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}


def statements(template: Template, principal_id: str) -> list[dict]:
    """Every policy statement attached to the role or user ``principal_id``."""
    found = [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": principal_id}
        in policy["Properties"].get("Roles", []) + policy["Properties"].get("Users", [])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert found, f"no policy attached to {principal_id}"
    return found


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# --- the customer key -------------------------------------------------------------------


def test_media_key_rotates_is_aliased_and_retained(storage):
    key_id, key = only(storage, "AWS::KMS::Key", {"Description": Match.string_like_regexp("media")})
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["Properties"]["RotationPeriodInDays"] == 365
    assert key["DeletionPolicy"] == "Retain"
    storage.has_resource_properties(
        "AWS::KMS::Alias",
        {
            "AliasName": "alias/stowage-example/media",
            "TargetKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
        },
    )


def test_media_key_policy_is_account_delegation_plus_cloudfront_decrypt(storage, single_region):
    """IAM principals get key use through grants on their own policies; the key policy adds
    only CloudFront (OAC) decrypting, for this account's distributions."""
    _, key = only(storage, "AWS::KMS::Key", {"Description": Match.string_like_regexp("media")})
    root, cloudfront = key["Properties"]["KeyPolicy"]["Statement"]
    assert ":root" in json.dumps(root["Principal"])
    assert cloudfront["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert cloudfront["Action"] == "kms:Decrypt"
    assert cloudfront["Condition"] == {
        "StringLike": {"AWS:SourceArn": "arn:aws:cloudfront::123456789012:distribution/*"}
    }


# --- the media bucket -------------------------------------------------------------------


def test_media_bucket_is_encrypted_with_the_customer_key_and_a_bucket_key(storage):
    _, bucket = media_bucket(storage)
    key_id, _ = only(storage, "AWS::KMS::Key", {"Description": Match.string_like_regexp("media")})
    sse = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert sse["BucketKeyEnabled"] is True


def test_media_bucket_is_private_versioned_owner_enforced_and_retained(storage):
    _, bucket = media_bucket(storage)
    props = bucket["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert bucket["DeletionPolicy"] == "Retain"
    assert bucket["UpdateReplacePolicy"] == "Retain"


def test_every_bucket_refuses_plain_http_and_old_tls(example):
    for stack_id in ("Storage", "Replica"):
        template = example.template(stack_id)
        buckets = template.find_resources("AWS::S3::Bucket")
        policies = template.find_resources("AWS::S3::BucketPolicy")
        covered = {p["Properties"]["Bucket"]["Ref"] for p in policies.values()}
        assert covered == set(buckets), f"{stack_id}: every bucket has a policy"
        for policy in policies.values():
            denies = [
                s
                for s in policy["Properties"]["PolicyDocument"]["Statement"]
                if s["Effect"] == "Deny"
            ]
            conditions = [s["Condition"] for s in denies]
            assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
            assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions


def test_media_bucket_logs_to_an_sse_s3_log_bucket_that_expires(storage):
    _, bucket = media_bucket(storage)
    log_id, log_bucket = only(
        storage,
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            }
        },
    )
    assert bucket["Properties"]["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": log_id},
        "LogFilePrefix": "media/",
    }
    expire = rules_by_id(log_bucket)["ExpireAccessLogs"]
    assert expire["ExpirationInDays"] == 365
    assert log_bucket["Properties"]["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    assert log_bucket["DeletionPolicy"] == "Retain"
    # Log delivery is granted by bucket policy (no ACLs on a BucketOwnerEnforced bucket).
    storage.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": log_id},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "s3:PutObject",
                                "Principal": {"Service": "logging.s3.amazonaws.com"},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_cloudfront_may_read_media_prefixes_but_not_temp(storage):
    bucket_id, _ = media_bucket(storage)
    policies = storage.find_resources("AWS::S3::BucketPolicy")
    (policy,) = [p for p in policies.values() if p["Properties"]["Bucket"] == {"Ref": bucket_id}]
    (statement,) = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "CloudFrontReadsMedia"
    ]
    assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert statement["Action"] == "s3:GetObject"
    resources = json.dumps(statement["Resource"])
    for prefix in ("videos/*", "images/*", "transcripts/*", "processed/*", "variants/*"):
        assert prefix in resources
    assert "temp/" not in resources
    assert statement["Condition"]["StringLike"]["AWS:SourceArn"].endswith(":distribution/*")


def test_media_bucket_sends_events_to_eventbridge_without_a_lambda(storage):
    _, bucket = media_bucket(storage)
    assert bucket["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    assert not storage.find_resources("Custom::S3BucketNotifications")


def test_temp_prefix_expires_after_the_configured_hours(storage, single_region):
    _, bucket = media_bucket(storage)
    temp = rules_by_id(bucket)["ExpireTemp"]
    assert temp["Prefix"] == "temp/"
    assert temp["ExpirationInDays"] == 1  # 24 h in example.yaml
    assert temp["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    assert temp["Status"] == "Enabled"
    # 49 hours round up to 3 days.
    _, bucket = media_bucket(single_region.template("Storage"))
    assert rules_by_id(bucket)["ExpireTemp"]["ExpirationInDays"] == 3


def test_housekeeping_everywhere(storage):
    _, bucket = media_bucket(storage)
    rules = rules_by_id(bucket)
    housekeeping = rules["Housekeeping"]
    assert "Prefix" not in housekeeping
    assert "Filter" not in housekeeping
    assert housekeeping["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert housekeeping["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert rules["RemoveExpiredDeleteMarkers"]["ExpiredObjectDeleteMarker"] is True


def test_permanent_prefixes_move_to_intelligent_tiering_from_128_kib(storage):
    _, bucket = media_bucket(storage)
    rules = rules_by_id(bucket)
    for prefix in ("videos/", "images/", "transcripts/", "processed/"):
        rule = rules[f"IntelligentTiering-{prefix.rstrip('/')}"]
        assert rule["Prefix"] == prefix
        assert rule["ObjectSizeGreaterThan"] == str(128 * 1024 - 1)
        assert rule["Transitions"] == [
            {"StorageClass": "INTELLIGENT_TIERING", "TransitionInDays": 0}
        ]
    assert not any(r.get("Prefix") == "temp/" and "Transitions" in r for r in rules.values())


def test_cors_allows_presigned_browser_uploads_from_configured_origins(storage, single_region):
    _, bucket = media_bucket(storage)
    (rule,) = bucket["Properties"]["CorsConfiguration"]["CorsRules"]
    assert rule["AllowedOrigins"] == ["https://app.example.com", "http://localhost:3000"]
    assert set(rule["AllowedMethods"]) == {"GET", "HEAD", "PUT", "POST"}
    assert "ETag" in rule["ExposedHeaders"]  # multipart completion needs each part's ETag
    _, bucket = media_bucket(single_region.template("Storage"))
    assert "CorsConfiguration" not in bucket["Properties"]


# --- the catalog table ------------------------------------------------------------------


def test_catalog_table(storage):
    table_id, table = only(storage, "AWS::DynamoDB::GlobalTable")
    key_id, _ = only(storage, "AWS::KMS::Key", {"Description": Match.string_like_regexp("media")})
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
    (replica,) = props["Replicas"]
    assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert replica["SSESpecification"] == {"KMSMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]}}
    assert replica["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"

    indexes = {index["IndexName"]: index for index in props["GlobalSecondaryIndexes"]}
    assert set(indexes) == {BY_PREFIX_INDEX, TEMP_BY_EXPIRY_INDEX}
    assert indexes[BY_PREFIX_INDEX]["KeySchema"] == [
        {"AttributeName": "prefix", "KeyType": "HASH"},
        {"AttributeName": "created", "KeyType": "RANGE"},
    ]
    assert indexes[TEMP_BY_EXPIRY_INDEX]["KeySchema"] == [
        {"AttributeName": "temp", "KeyType": "HASH"},
        {"AttributeName": "expires_at", "KeyType": "RANGE"},
    ]
    assert indexes[TEMP_BY_EXPIRY_INDEX]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert types["expires_at"] == "N"
    assert table_id


def test_outputs_for_operators_and_ansible(storage):
    outputs = storage.to_json()["Outputs"]
    assert set(outputs) >= {
        "MediaBucketName",
        "MediaKeyArn",
        "CatalogTableName",
        "RuntimeRoleArn",
        "HostUserName",
        "HostCredentialsSecretArn",
        "AlarmTopicArn",
    }


# --- monitoring -------------------------------------------------------------------------


def test_alarm_topic_is_encrypted_tls_only_and_mails_the_operator(storage):
    topic_id, topic = only(storage, "AWS::SNS::Topic")
    topic_key_id, topic_key = only(
        storage, "AWS::KMS::Key", {"Description": Match.string_like_regexp("alarm")}
    )
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [topic_key_id, "Arn"]}
    assert topic_key["Properties"]["EnableKeyRotation"] is True
    storage.has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "email", "Endpoint": "ops@example.com", "TopicArn": {"Ref": topic_id}},
    )
    _, policy = only(storage, "AWS::SNS::TopicPolicy")
    document = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in document
    )
    publishers = {s["Principal"]["Service"] for s in document if s["Effect"] == "Allow"}
    assert publishers == {"cloudwatch.amazonaws.com", "budgets.amazonaws.com"}
    for s in document:
        if s["Effect"] == "Allow":
            assert s["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_bucket_5xx_alarm_reads_request_metrics_and_notifies(storage):
    bucket_id, bucket = media_bucket(storage)
    topic_id, _ = only(storage, "AWS::SNS::Topic")
    assert bucket["Properties"]["MetricsConfigurations"] == [{"Id": "EntireBucket"}]
    storage.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/S3",
            "MetricName": "5xxErrors",
            "Dimensions": Match.array_with(
                [
                    {"Name": "BucketName", "Value": {"Ref": bucket_id}},
                    {"Name": "FilterId", "Value": "EntireBucket"},
                ]
            ),
            "Statistic": "Sum",
            "Threshold": 5,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "AlarmActions": [{"Ref": topic_id}],
            "OKActions": [{"Ref": topic_id}],
        },
    )


def test_monthly_cost_budget_notifies_the_topic(storage):
    topic_id, _ = only(storage, "AWS::SNS::Topic")
    _, budget = only(storage, "AWS::Budgets::Budget")
    props = budget["Properties"]
    assert props["Budget"]["BudgetLimit"] == {"Amount": 50, "Unit": "USD"}
    assert props["Budget"]["BudgetType"] == "COST"
    assert props["Budget"]["TimeUnit"] == "MONTHLY"
    kinds = {n["Notification"]["NotificationType"] for n in props["NotificationsWithSubscribers"]}
    assert kinds == {"ACTUAL", "FORECASTED"}
    for notification in props["NotificationsWithSubscribers"]:
        assert notification["Subscribers"] == [
            {"SubscriptionType": "SNS", "Address": {"Ref": topic_id}}
        ]


def test_topic_key_lets_only_the_publishing_services_use_it(storage):
    _, key = only(storage, "AWS::KMS::Key", {"Description": Match.string_like_regexp("alarm")})
    services = [
        s for s in key["Properties"]["KeyPolicy"]["Statement"] if "Service" in s["Principal"]
    ]
    assert {s["Principal"]["Service"] for s in services} == {
        "cloudwatch.amazonaws.com",
        "budgets.amazonaws.com",
    }
    for statement in services:
        assert set(statement["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
        assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
