package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/pflag"

	utilfeature "k8s.io/apiserver/pkg/util/feature"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/version/verflag"
	"k8s.io/kubernetes/cmd/kubelet/app/options"
	kubeletconfig "k8s.io/kubernetes/pkg/kubelet/apis/config"
	kubeletconfigvalidation "k8s.io/kubernetes/pkg/kubelet/apis/config/validation"
	"k8s.io/kubernetes/pkg/kubelet/eviction"
	"k8s.io/kubernetes/pkg/kubelet/kubeletconfig/configfiles"
	utilfs "k8s.io/kubernetes/pkg/util/filesystem"
)

// ignoredFlags are kubelet flags that older kubeadm releases write into
// kubeadm-flags.env and that kubelet v1.36 no longer has. The test kubelet
// accepts and ignores them so that such a layout still starts.
var ignoredFlags = []string{"pod-infra-container-image", "network-plugin"}

// errHelpRequested stops start-up after --help has printed the usage.
var errHelpRequested = errors.New("help requested")

// newFlagSet registers the kubelet's own flags on a flag set that writes into
// flags and config, in the way cmd/kubelet/app builds its command line.
func newFlagSet(flags *options.KubeletFlags, config *kubeletconfig.KubeletConfiguration) *pflag.FlagSet {
	fs := pflag.NewFlagSet("kubelet", pflag.ContinueOnError)
	fs.SetNormalizeFunc(cliflag.WordSepNormalizeFunc)
	flags.AddFlags(fs)
	options.AddKubeletConfigFlags(fs, config)
	options.AddGlobalFlags(fs)
	for _, name := range ignoredFlags {
		if fs.Lookup(name) == nil {
			fs.String(name, "", "Ignored by the test kubelet.")
			_ = fs.MarkDeprecated(name, "it is ignored by kubelet v1.36 and by the test kubelet.")
		}
	}
	return fs
}

// parseCommandLine reads the kubelet command line and the --config file with
// the real kubelet's precedence: defaults, then the file, then the flags.
func parseCommandLine(ctx context.Context, args []string) (*options.KubeletServer, *pflag.FlagSet, error) {
	flags := options.NewKubeletFlags()
	config, err := options.NewKubeletConfiguration()
	if err != nil {
		return nil, nil, fmt.Errorf("failed to build the default kubelet configuration: %w", err)
	}

	fs := newFlagSet(flags, config)
	help := fs.BoolP("help", "h", false, "Print this help and exit.")
	if err := fs.Parse(args); err != nil {
		return nil, nil, fmt.Errorf("invalid command line: %w", err)
	}
	if *help {
		fmt.Fprintf(fs.Output(), "Usage: kubelet [flags]\n\nFlags:\n%s", fs.FlagUsagesWrapped(2))
		return nil, nil, errHelpRequested
	}
	if extra := fs.Args(); len(extra) > 0 {
		return nil, nil, fmt.Errorf("unexpected argument %q: the kubelet takes flags only", extra[0])
	}
	verflag.PrintAndExitIfRequested()

	if err := utilfeature.DefaultMutableFeatureGate.SetFromMap(config.FeatureGates); err != nil {
		return nil, nil, fmt.Errorf("invalid --feature-gates: %w", err)
	}
	if err := options.ValidateKubeletFlags(flags); err != nil {
		return nil, nil, fmt.Errorf("invalid kubelet flags: %w", err)
	}
	if flags.KubeletDropinConfigDirectory != "" {
		return nil, nil, fmt.Errorf("--config-dir %q is not supported by the test kubelet: put the settings into the --config file", flags.KubeletDropinConfigDirectory)
	}

	if flags.KubeletConfigFile != "" {
		config, err = loadConfigFile(ctx, flags.KubeletConfigFile)
		if err != nil {
			return nil, nil, err
		}
		if err := reapplyConfigFlags(config, args); err != nil {
			return nil, nil, err
		}
		if err := utilfeature.DefaultMutableFeatureGate.SetFromMap(config.FeatureGates); err != nil {
			return nil, nil, fmt.Errorf("invalid featureGates in %s: %w", flags.KubeletConfigFile, err)
		}
	}

	adaptToFakeHost(config)
	if err := kubeletconfigvalidation.ValidateKubeletConfiguration(config, utilfeature.DefaultFeatureGate); err != nil {
		return nil, nil, fmt.Errorf("invalid kubelet configuration (--config %q and flags): %w", flags.KubeletConfigFile, err)
	}

	server := &options.KubeletServer{KubeletFlags: *flags, KubeletConfiguration: *config}
	return server, fs, nil
}

// loadConfigFile decodes a KubeletConfiguration file with the kubelet's own
// loader, which applies defaults and resolves relative paths against the
// file's folder.
func loadConfigFile(ctx context.Context, path string) (*kubeletconfig.KubeletConfiguration, error) {
	absolute, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("invalid --config %q: %w", path, err)
	}
	loader, err := configfiles.NewFsLoader(&utilfs.DefaultFs{}, absolute)
	if err != nil {
		return nil, fmt.Errorf("failed to load --config %q: %w", path, err)
	}
	config, err := loader.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to load --config %q: %w", path, err)
	}

	// The file may leave evictionHard out, and its defaults depend on the
	// operating system, so the kubelet fills them in after loading.
	if config.EvictionHard == nil {
		config.EvictionHard = eviction.DefaultEvictionHard
	} else if config.MergeDefaultEvictionSettings {
		for signal, threshold := range eviction.DefaultEvictionHard {
			if _, set := config.EvictionHard[signal]; !set {
				config.EvictionHard[signal] = threshold
			}
		}
	}
	return config, nil
}

// reapplyConfigFlags parses the command line again into config, so that a
// flag given on the command line overrides the same setting in the file.
// Only configuration flags write anywhere; the others go to throwaway values.
func reapplyConfigFlags(config *kubeletconfig.KubeletConfiguration, args []string) error {
	fileGates := config.FeatureGates

	fs := pflag.NewFlagSet("kubelet", pflag.ContinueOnError)
	fs.SetNormalizeFunc(cliflag.WordSepNormalizeFunc)
	fs.SetOutput(io.Discard)
	discarded := pflag.NewFlagSet("discarded", pflag.ContinueOnError)
	options.AddGlobalFlags(discarded)
	for _, name := range ignoredFlags {
		discarded.String(name, "", "")
	}
	discarded.VisitAll(func(flag *pflag.Flag) {
		fs.VarP(cliflag.NoOp{}, flag.Name, flag.Shorthand, flag.Usage)
	})
	fs.BoolP("help", "h", false, "")
	options.NewKubeletFlags().AddFlags(fs)
	options.AddKubeletConfigFlags(fs, config)

	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("invalid command line: %w", err)
	}

	// Feature gates set in the file and not on the command line stay set.
	for gate, enabled := range fileGates {
		if _, set := config.FeatureGates[gate]; !set {
			config.FeatureGates[gate] = enabled
		}
	}
	return nil
}
