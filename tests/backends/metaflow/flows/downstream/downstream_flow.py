"""Runs when LinearFlow (same project and branch) finishes successfully."""

from metaflow import FlowSpec, project, step, trigger_on_finish


@project(name="recsys")
@trigger_on_finish(flow="LinearFlow")
class DownstreamFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DownstreamFlow()
