// exportVideo with OpenCV: each unit merged, overlay.avi written beside the result arrays.
#include "cvrender.h"
#include "qmpp/error.h"
#include "qmpp/io.h"
#include "qmpp/report.h"
#include "qmpp/videoexport.h"

#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <filesystem>

namespace qmpp {

namespace {

// One frame of the overlay video: the frame's slice of the groups beside its saliency.
cv::Mat overlayFrame(const ImageInput& img, const TokenSet& t, const MergeResult& r, int slot,
                     int tubelet, int tau) {
    const GroupPictures pics = cvio::groupPictures(img, t, r, slot, tubelet, tau);
    cv::Mat out;
    cv::hconcat(cvio::toMat(pics.clusters), cvio::saliencyMat(img, t, r, slot), out);
    return out;
}

} // namespace

VideoRun exportVideo(const std::string& path, const VideoOptions& o, FrameRange range,
                     const MergeParams& p, const std::string& dir, bool force,
                     const Progress& progress) {
    OutputDir::checkTarget(dir, force); // refuse before any work is done
    VideoReader reader(path, o);
    VideoRun run;
    run.info = reader.info();
    run.options = o;
    run.options.projection = nullptr;
    run.range = resolveRange(run.info, range);
    run.params = p;
    const i64 total = run.range.end - run.range.begin;

    OutputDir out(dir, force);
    cv::VideoWriter writer;
    const std::string avi = out.path("overlay.avi");
    MergeSession session;
    i64 done = 0;
    forEachUnit(reader, o, run.range, [&](VideoUnit& u) {
        MergeResult r = session.run(u.tokens, p);
        for (i64 f = 0; f < u.frames; ++f) {
            const int slot = static_cast<int>(f / o.tubelet);
            const cv::Mat frame = overlayFrame(u.images[std::size_t(f)], u.tokens, r, slot,
                                               o.tubelet, int(f % o.tubelet));
            if (!writer.isOpened()) {
                const double fps = run.info.fps > 0 ? run.info.fps : 25.0;
                if (!writer.open(avi, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), fps,
                                 frame.size()))
                    throw OutputError(dir +
                                      ": cannot write overlay.avi (no MJPG encoder, or the folder "
                                      "is not writable)");
            }
            writer.write(frame);
        }
        if (!run.results.empty())
            run.flicker.push_back(groupFlicker(run.results.back().labels, r.labels));
        run.unitBegin.push_back(u.begin);
        run.unitFrames.push_back(u.frames);
        run.results.push_back(std::move(r));
        done += u.frames;
        if (progress && !progress(done, total)) throw Cancelled();
        return true;
    });
    if (run.results.empty())
        throw InputError(path + ": no frame of " + toString(run.range) + " could be decoded");
    writer.release();
    std::error_code ec;
    if (std::filesystem::file_size(avi, ec) == 0 || ec)
        throw OutputError(dir + ": overlay.avi could not be written (disk full?)");
    run.files = writeResultArrays(out.tempDir(), run.results, true);
    run.files.push_back("overlay.avi");
    run.files.push_back("report.json");
    const std::string text = videoReport(run).dump(2) + "\n";
    writeFileBytes(out.path("report.json"), std::vector<std::uint8_t>(text.begin(), text.end()));
    out.commit();
    return run;
}

} // namespace qmpp
