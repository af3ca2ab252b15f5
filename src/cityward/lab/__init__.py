"""The local lab: offline Debian images and the containers built from them."""
