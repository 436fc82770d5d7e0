"""Train the ranking model every night (Europe/Berlin), in a foreach over regions."""

from metaflow import FlowSpec, Parameter, project, resources, retry, schedule, step


@project(name="recsys")
@schedule(cron="0 2 * * *", timezone="Europe/Berlin")
class TrainFlow(FlowSpec):
    regions = Parameter("regions", default="eu,us", help="comma-separated regions")
    epochs = Parameter("epochs", default=20, type=int)

    @step
    def start(self):
        self.region_list = self.regions.split(",")
        self.next(self.train, foreach="region_list")

    @retry(times=2)
    @resources(cpu=4, memory=16384)
    @step
    def train(self):
        self.region = self.input
        self.score = len(self.region) * self.epochs  # stands in for real training
        self.next(self.pick)

    @step
    def pick(self, inputs):
        self.best = max(inputs, key=lambda i: i.score).region
        self.next(self.end)

    @step
    def end(self):
        print("best region:", self.best)


if __name__ == "__main__":
    TrainFlow()
