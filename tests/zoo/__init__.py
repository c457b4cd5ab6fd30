"""A zoo of test cameras built from independent tools, each with the traits real cameras have.

Media is encoded once by ffmpeg (libx264/libx265, AAC, G.711, Opus) and cached outside the
repository; cameras replay it without encoding: an RTSP camera on GStreamer's RTSP server
library (with faults: loss, stalls, timestamp jumps, RTP wrap, drift, one client only,
parameter sets in the SDP or in-band), ffmpeg serving MPEG-TS over HTTP, and ffmpeg
publishing to a private nginx-rtmp. Every video frame carries the project's SEI stamp
(streamwarden.demo.stamp), so a recording tells exactly which frames it kept.
"""
