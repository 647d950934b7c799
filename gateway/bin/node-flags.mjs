// V8 heap settings for a gateway process, sized for Raspberry-Pi-class boards. Without them V8 sizes its
// heap for the machine it runs on (on a 24 GiB build box it lets the old generation grow towards 4 GiB and
// keeps 16 MiB semi-spaces), so a busy `datagate dev` sat at 150-240 MiB RSS; with them 110-140 MiB at the
// same 27k readings/s (npm run bench:pipeline) and the same transfers/s (bench:ledger). The old-space
// limit is a ceiling, not a reservation: live data beyond it ends the process, so it stays generous.
// The `datagate` shebang and `npm start` pass these (test/unit/build-state.test.ts checks they agree).
export const GATEWAY_NODE_FLAGS = ['--max-semi-space-size=8', '--max-old-space-size=256'];
