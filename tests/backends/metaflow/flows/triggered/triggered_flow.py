"""Runs when the event data_ready arrives; the event's object_key becomes the key parameter."""

from metaflow import FlowSpec, Parameter, project, step, trigger


@project(name="recsys")
@trigger(event={"name": "data_ready", "parameters": {"key": "object_key"}})
class TriggeredFlow(FlowSpec):
    key = Parameter("key", default="latest.csv")

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        print("loaded", self.key)


if __name__ == "__main__":
    TriggeredFlow()
