#!/bin/sh
# Ends this runner host: with instance_initiated_shutdown_behavior = "terminate", powering
# off terminates the instance and its billing.
exec systemctl poweroff
