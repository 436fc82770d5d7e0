"""A foreach, without @project (deployed under flowplan's own name)."""

from metaflow import FlowSpec, Parameter, step


class ForeachFlow(FlowSpec):
    regions = Parameter("regions", default="eu,us", help="comma-separated regions")

    @step
    def start(self):
        self.items = self.regions.split(",")
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.result = self.input.upper()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.results = [i.result for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ForeachFlow()
