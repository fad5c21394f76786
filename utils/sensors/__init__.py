"""KITTI's other sensors: velodyne scans as depth maps, LiDAR rings, GPS/IMU (OXTS) records."""
