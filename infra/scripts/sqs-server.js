// Starts the SQS emulator on 127.0.0.1:$PORT. Queues are created by the platform (or tests) through the API.
const { createSqsServer } = require("local-aws-sqs");
const port = Number(process.env.PORT || 0);
createSqsServer({ port, hostname: "127.0.0.1", emulateQueueCreationLifecycle: false }).then(() => {
  console.log(`sqs emulator listening on 127.0.0.1:${port}`);
});
