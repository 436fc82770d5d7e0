"""A daily report; its deployment on Step Functions is scheduled by the manifest, not a decorator."""

from metaflow import FlowSpec, Parameter, project, step


@project(name="recsys")
class ReportFlow(FlowSpec):
    day = Parameter("day", default="yesterday")

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        print("report for", self.day)


if __name__ == "__main__":
    ReportFlow()
