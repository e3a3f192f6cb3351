"""Real Linux kernels under QEMU as an oracle for the model (issue 17).

:mod:`reclaim.vm.assets` installs QEMU and the cross compiler and downloads Debian's Linux 6.12
kernels and busybox (``reclaim vm fetch``); :mod:`reclaim.vm.initramfs` builds the guest's
initramfs; :mod:`reclaim.vm.guest` boots a guest and runs the in-guest agent
(:file:`agent.c`) on an input, returning its JSON results. The scenario cross-check on a guest
is :mod:`reclaim.crosscheck.vm`.
"""
