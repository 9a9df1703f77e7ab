// Test-only Firestore emulator: `node server.js PORT` serves the Firestore v1
// gRPC API on 127.0.0.1:PORT, in memory, until SIGTERM/SIGINT.
//
// @firestore-emulator/server has no command-line entry point and its own
// start() binds 0.0.0.0; we bind its grpc server to loopback only. It is
// correct for set/get, nested paths, where+order_by+limit, batches,
// transactions and deletes, and wrong for collection-group queries,
// start_after/offset, == None filters, DELETE_FIELD and concurrent
// transactions (docs/firestore.md): the mirror uses none of those.
"use strict";

const grpc = require("@grpc/grpc-js");
const { FirestoreServer } = require("@firestore-emulator/server");

const port = Number(process.argv[2] || process.env.PORT || 8080);
const emulator = new FirestoreServer();

emulator.server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
  if (err) {
    console.error(`firestore emulator: cannot bind 127.0.0.1:${port}: ${err.message}`);
    process.exit(1);
  }
  // The test fixture waits for this line before it points the client here.
  console.log(`firestore emulator listening on 127.0.0.1:${bound}`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    emulator.stop();
    process.exit(0);
  });
}
