"""AWS Step Functions backend: state machines, EventBridge Scheduler schedules and rules."""
