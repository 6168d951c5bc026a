// Package e2e_test holds strait's end-to-end tests: they build the strait
// binary and drive it as a user would, against real clusters (`strait
// broker` processes): the mirror daemon and its admin API, kill -9 in the
// middle of a copy, `strait demo` and `strait drill` with their reports,
// and the deployment files.
//
// The folder holds tests only. The failover story that `strait demo` and
// `strait drill` run is package strait/drill; its unit tests live there.
package e2e_test
