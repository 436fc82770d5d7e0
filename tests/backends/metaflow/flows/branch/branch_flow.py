"""A branch and a join, scheduled daily (Metaflow writes that in AWS's 6-field cron)."""

from metaflow import FlowSpec, project, schedule, step


@project(name="recsys")
@schedule(daily=True)
class BranchFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.left, self.right)

    @step
    def left(self):
        self.side = "left"
        self.next(self.join)

    @step
    def right(self):
        self.side = "right"
        self.next(self.join)

    @step
    def join(self, inputs):
        self.sides = sorted(i.side for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BranchFlow()
