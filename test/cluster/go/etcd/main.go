// Command etcd runs the etcd server of go.etcd.io/etcd/server/v3, with the
// same flags as the etcd release binary. It lives in its own Go module so that
// etcd's dependency versions do not constrain those of Kubernetes.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
