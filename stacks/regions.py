"""The AWS regions a deployment config may name."""

# Commercial AWS regions. A typo in a region would otherwise only surface at deploy time,
# as a stack that silently targets nothing; add new regions here as AWS opens them.
AWS_REGIONS = frozenset(
    {
        "af-south-1",
        "ap-east-1",
        "ap-east-2",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-south-1",
        "ap-south-2",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "ap-southeast-5",
        "ap-southeast-6",
        "ap-southeast-7",
        "ca-central-1",
        "ca-west-1",
        "eu-central-1",
        "eu-central-2",
        "eu-north-1",
        "eu-south-1",
        "eu-south-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "il-central-1",
        "me-central-1",
        "me-south-1",
        "mx-central-1",
        "sa-east-1",
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
    }
)

# Regions where Amazon Lightsail runs instances.
LIGHTSAIL_REGIONS = frozenset(
    {
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-south-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ca-central-1",
        "eu-central-1",
        "eu-north-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "us-east-1",
        "us-east-2",
        "us-west-2",
    }
)

# Where Lambda@Edge origin-response triggers run (the Regional Edge Caches, each an AWS
# region) for the edge locations of each CloudFront price class: the resizer's metrics and
# logs land in these regions. PriceClass_100 serves North America and Europe; 200 adds Asia,
# the Middle East and Africa; All adds South America and Oceania. Written from CloudFront's
# published Regional Edge Cache locations, not read from an API: check that list when AWS
# opens a new one (a region missing here only leaves its resizer line off the dashboard).
_EDGE_100 = ("us-east-1", "us-east-2", "us-west-2", "eu-central-1", "eu-west-1", "eu-west-2")
_EDGE_200 = (*_EDGE_100, "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-southeast-1")
EDGE_REGIONS_BY_PRICE_CLASS = {
    "PriceClass_100": _EDGE_100,
    "PriceClass_200": _EDGE_200,
    "PriceClass_All": (*_EDGE_200, "ap-southeast-2", "sa-east-1"),
}
