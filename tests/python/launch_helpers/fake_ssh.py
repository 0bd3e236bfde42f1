"""Stands in for ssh in the launcher tests: drops ssh's options and the destination (logging
them as JSON lines to $FAKE_SSH_LOG) and runs the remote command here with `sh -c`, exactly
as sshd would hand it to the login shell. stdin is relayed through a pipe this process owns,
so, as with a real ssh, the command sees end of file when this process exits or is killed."""

import json
import os
import subprocess
import sys
import threading

OPTIONS_WITH_VALUE = set("BbcDEeFIiJLlmOopQRSWw")

argv = sys.argv[1:]
options, i = [], 0
while i < len(argv) and argv[i].startswith("-"):
    options.append(argv[i])
    if len(argv[i]) == 2 and argv[i][1] in OPTIONS_WITH_VALUE:
        i += 1
        options.append(argv[i])
    i += 1
destination, command = argv[i], " ".join(argv[i + 1 :])
if os.environ.get("FAKE_SSH_LOG"):
    with open(os.environ["FAKE_SSH_LOG"], "a") as f:
        f.write(json.dumps({"destination": destination, "options": options}) + "\n")

remote = subprocess.Popen(["sh", "-c", command], stdin=subprocess.PIPE, start_new_session=True)


def relay():
    while True:
        data = os.read(0, 4096)
        if not data:
            break
        remote.stdin.write(data)
        remote.stdin.flush()
    remote.stdin.close()


threading.Thread(target=relay, daemon=True).start()
code = remote.wait()
sys.exit(code if code >= 0 else 255)  # ssh reports a remote signal death as 255
