"""Publish the model as soon as TrainFlow (same project and branch) succeeds."""

from metaflow import FlowSpec, project, step, trigger_on_finish


@project(name="recsys")
@trigger_on_finish(flow="TrainFlow")
class PublishFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        print("published")


if __name__ == "__main__":
    PublishFlow()
