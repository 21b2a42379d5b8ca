"""CDK stacks for Stowage's cloud and single-host topologies."""
