// Force-included into Gloo's sources when building for Android (bionic libc). Gloo's
// common/linux.cc casts ioctl payloads to glibc's private `__caddr_t`, which bionic lacks.
// Not yet compiled on a phone (no NDK here): the first Termux build verifies it.
#pragma once

#ifndef __GLIBC__
typedef char* __caddr_t;
#endif
