// Command kubelet is the test kubelet of the kube-node-rename test cluster.
//
// It runs the kubelet of k8s.io/kubernetes (cmd/kubelet/app and pkg/kubelet)
// with the real command line, configuration file loading, TLS bootstrap,
// client certificate rotation, node registration, lease renewal and pod
// workers. Only what touches the machine is replaced, as kubemark's hollow
// node does: a fake CRI runtime served on --container-runtime-endpoint, a
// fake cAdvisor, a stub container manager and fake mounters.
package main

import (
	"fmt"
	"os"

	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as the kubelet registers it
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client metrics, as the kubelet registers them
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as the kubelet registers it
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "kubelet: %v\n", err)
		os.Exit(1)
	}
}
