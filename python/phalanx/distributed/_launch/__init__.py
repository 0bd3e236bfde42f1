"""The implementation of `phalanx launch` (phalanx.distributed.launch), split by concern.

phalanx.distributed.launch is the public entry point and holds the user manual; this private
package holds the parts, each small enough to read on its own:

- common: the program name, UsageError, and the argv every rank runs
- hosts: parsing the --hosts file
- plan: which rank runs where, each rank's environment, the store address
- output: whole-line, prefixed forwarding of rank output (LineSplitter, Console, pump)
- remote: ssh command lines
- watchdog: the program run beside each remote rank on its host (sent as source)
- procs: local rank commands and process signalling helpers
- boot: the program that starts each local rank, so it dies with the launcher (sent as source)
- supervisor: the Launcher that starts, watches and stops the job
- cli: argument parsing and checking, and main()

Nothing is imported here, so importing one part does not pull in the others.
"""
