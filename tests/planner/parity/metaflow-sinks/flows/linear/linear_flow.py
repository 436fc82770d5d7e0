"""A linear flow: parameters, @schedule with a time zone, @project, @retry, @resources."""

from metaflow import FlowSpec, Parameter, project, resources, retry, schedule, step


@project(name="recsys")
@schedule(cron="0 2 * * *", timezone="Europe/Berlin")
class LinearFlow(FlowSpec):
    """Train a model every night."""

    alpha = Parameter("alpha", default=0.5, help="learning rate")
    epochs = Parameter("epochs", default=10, type=int)

    @step
    def start(self):
        self.next(self.train)

    @retry(times=2)
    @resources(cpu=2, memory=4096)
    @step
    def train(self):
        self.score = self.alpha * self.epochs
        self.next(self.end)

    @step
    def end(self):
        print("score", self.score)


if __name__ == "__main__":
    LinearFlow()
