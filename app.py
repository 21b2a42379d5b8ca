#!/usr/bin/env python3
"""CDK entry point: load the deployment config named by ``-c config=NAME``, add its stacks."""

import sys

from aws_cdk import App

from stacks.config import ConfigError, load_config
from stacks.deployment import add_stacks

app = App()
try:
    config = load_config(app.node.try_get_context("config") or "example")
except ConfigError as error:
    sys.exit(f"error: {error}")
add_stacks(app, config)
app.synth()
