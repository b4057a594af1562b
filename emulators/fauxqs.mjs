// Quiet fauxqs launcher for sesroute's tests: SQS, SNS and S3 on one port.
// The fauxqs CLI logs every request; this runs the same server with logging off.
// Usage: FAUXQS_PORT=4566 node emulators/fauxqs.mjs &
// (fauxqs only exports its package root: "fauxqs/dist/app.js" is not importable.)
import { startFauxqs } from "fauxqs";

const port = Number.parseInt(process.env.FAUXQS_PORT ?? "4566", 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`fauxqs.mjs: bad FAUXQS_PORT: ${process.env.FAUXQS_PORT}`);
  process.exit(2);
}

const server = await startFauxqs({ port, logger: false });
// scripts/lib/emulators.sh waits for this exact line: keep it.
console.error(`fauxqs listening on 127.0.0.1:${server.port}`);

const stop = async () => {
  await server.stop();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
